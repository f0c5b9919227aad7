#!/bin/sh
# After virtd-daemon is removed (deb postrm, rpm %postun). A deb purge
# removes virtd's configuration, definitions, state and logs; rpm leaves
# them, as rpm does.
set -e

if [ "$1" = purge ]; then
	rm -rf /etc/virtd /var/lib/virtd /var/log/virtd /run/virtd
	rmdir /usr/libexec/virtd 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
