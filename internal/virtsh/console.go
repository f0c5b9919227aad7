package virtsh

import (
	"bytes"
	"io"
	"os"

	"github.com/virtd/virtd/internal/termios"
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
		if restore, err := termios.MakeRaw(int(f.Fd())); err == nil {
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
