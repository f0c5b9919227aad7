package termios

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMakeRawAndRestore(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
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
	slave, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	fd := int(slave.Fd())
	restore, err := MakeRaw(fd)
	if err != nil {
		t.Fatal(err)
	}
	tio, _ := unix.IoctlGetTermios(fd, unix.TCGETS)
	if tio.Lflag&(unix.ECHO|unix.ICANON) != 0 {
		t.Fatal("raw mode left echo or canonical mode on")
	}
	restore()
	tio, _ = unix.IoctlGetTermios(fd, unix.TCGETS)
	if tio.Lflag&unix.ICANON == 0 {
		t.Fatal("restore did not bring canonical mode back")
	}
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := MakeRaw(int(f.Fd())); err == nil {
		t.Fatal("MakeRaw accepted a plain file")
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
