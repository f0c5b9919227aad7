package virtsh

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns a new pty's slave end (closed when t ends).
func openPTY(t *testing.T) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return slave
}

func termiosOf(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *tio
}

// The console's terminal is raw while attached (no echo, no line editing,
// no signals from Ctrl+C, bytes unchanged), and as it was afterwards.
func TestRawTerminal(t *testing.T) {
	tty := openPTY(t)
	before := termiosOf(t, tty)
	if before.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) == 0 {
		t.Fatalf("a new pty is not cooked: lflag %#x", before.Lflag)
	}
	restore := rawTerminal(tty)
	raw := termiosOf(t, tty)
	if raw.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG|unix.IEXTEN) != 0 || raw.Iflag&(unix.ICRNL|unix.IXON) != 0 ||
		raw.Oflag&unix.OPOST != 0 || raw.Cflag&unix.CSIZE != unix.CS8 || raw.Cc[unix.VMIN] != 1 {
		t.Errorf("not raw: iflag %#x oflag %#x lflag %#x cflag %#x vmin %d", raw.Iflag, raw.Oflag, raw.Lflag, raw.Cflag, raw.Cc[unix.VMIN])
	}
	restore()
	if after := termiosOf(t, tty); after != before {
		t.Errorf("restore left %+v, want %+v", after, before)
	}

	// Not a terminal: left alone.
	f, err := os.Create(filepath.Join(t.TempDir(), "plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rawTerminal(f)()
	rawTerminal(&bytes.Buffer{})()
}
