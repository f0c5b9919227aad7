package virtsh

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
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
	defer rawTerminal(sh.stdin)()
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

// rawTerminal puts r in raw mode when it is a terminal, so that every key
// (Ctrl+C, Ctrl+] among them) reaches the console as typed, and returns
// what puts it back as it was. Anything else is left alone.
func rawTerminal(r io.Reader) (restore func()) {
	f, ok := r.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	old, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(int(f.Fd()), old) }
}
