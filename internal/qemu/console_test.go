package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/virt"
)

// The driver's end of a guest's console pty is raw: what the guest and
// the client send passes unchanged, with no echo, no line editing and no
// newline translation by the pty in between.
func TestOpenConsolePTYIsRaw(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	con, err := openConsolePTY(fmt.Sprintf("/dev/pts/%d", n))
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	tio, err := unix.IoctlGetTermios(int(con.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG|unix.IEXTEN) != 0 || tio.Iflag&(unix.ICRNL|unix.IXON) != 0 ||
		tio.Oflag&unix.OPOST != 0 || tio.Cflag&unix.CSIZE != unix.CS8 {
		t.Errorf("console pty not raw: iflag %#x oflag %#x lflag %#x cflag %#x", tio.Iflag, tio.Oflag, tio.Lflag, tio.Cflag)
	}
	// A line written by the client reaches the guest as written.
	if _, err := con.Write([]byte("a\nb")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(master, buf); err != nil || string(buf) != "a\nb" {
		t.Errorf("the guest read %q, %v; want %q", buf, err, "a\nb")
	}

	f := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openConsolePTY(f); !errors.Is(err, virt.ErrInternal) {
		t.Errorf("openConsolePTY on a plain file: %v, want an internal error", err)
	}
	if _, err := openConsolePTY(filepath.Join(t.TempDir(), "none")); !errors.Is(err, virt.ErrUnavailable) {
		t.Errorf("openConsolePTY on nothing: %v, want unavailable", err)
	}
}
