package virtsh

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// escapeChar detaches from a console, as in virsh: Ctrl+].
const escapeChar = 0x1d

func cmdConsole(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	con, err := d.OpenConsole(sh.ctx, p.str("devname"))
	if err != nil {
		return failed(err, "failed to open the console of domain '%s'", d.Name())
	}
	defer con.Close()
	sh.printf("Connected to domain '%s'\nEscape character is ^] (Ctrl + ])\n", d.Name())
	if f, ok := sh.stdin.(*os.File); ok {
		if restore, err := rawMode(int(f.Fd())); err == nil {
			defer restore()
		}
	}
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(sh.stdout, con)
		done <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sh.stdin.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				i := bytes.IndexByte(chunk, escapeChar)
				if i >= 0 {
					chunk = chunk[:i]
				}
				if len(chunk) > 0 {
					if _, werr := con.Write(chunk); werr != nil {
						break
					}
				}
				if i >= 0 {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	select {
	case <-done:
	case <-sh.ctx.Done():
	}
	sh.printf("\n")
	return nil
}

// rawMode puts a terminal into raw mode and returns how to restore it; it
// fails on anything that is not a terminal.
func rawMode(fd int) (func(), error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
