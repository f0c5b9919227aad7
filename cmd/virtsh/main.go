// The virtsh program is virtd's command-line client, in the spirit of
// libvirt's virsh: `virtsh [-c URI] [-r] COMMAND [ARGS]`. See package
// internal/virtsh.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/virtd/virtd/internal/virtsh"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := virtsh.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
