package qemu

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/virt"
)

var (
	_ driver.NativeConverter = (*Driver)(nil)
	_ driver.Consoler        = (*Driver)(nil)
)

// DomainXMLToNative turns domain XML into the QEMU command line that start
// would run (format "qemu-argv"), quoted for a shell. A domain with no
// <emulator> gets the driver's own emulator for its architecture, one of
// those capabilities lists; no path the XML names is touched.
func (drv *Driver) DomainXMLToNative(_ context.Context, format, doc string) (string, error) {
	if format != "qemu-argv" {
		return "", fmt.Errorf("native format %q: the qemu driver converts to qemu-argv only: %w", format, virt.ErrNotSupported)
	}
	argv, err := ArgvFromXML(doc, drv.caps.emulatorFor)
	if err != nil {
		return "", err
	}
	return shellQuote(argv), nil
}

// DomainXMLFromNative is not offered: QEMU command lines are not parsed
// back into XML.
func (drv *Driver) DomainXMLFromNative(_ context.Context, format, _ string) (string, error) {
	return "", fmt.Errorf("native format %q: the qemu driver cannot convert a native config to XML: %w", format, virt.ErrNotSupported)
}

// OpenConsole attaches to a running guest's pty serial console: devName is
// a serial or console alias ("serial0", "console0") or empty for the first.
func (drv *Driver) OpenConsole(ctx context.Context, uuid, devName string) (io.ReadWriteCloser, error) {
	d, err := drv.doms.Find(virt.ByUUID(uuid))
	if err != nil {
		return nil, err
	}
	if !d.State.Active() || d.Live == nil {
		d.Unlock()
		return nil, fmt.Errorf("domain '%s' is not running: %w", d.Name(), virt.ErrFailedPrecondition)
	}
	x := d.Live.x
	name := x.Name
	var path string
	for i, s := range x.Devices.Serials {
		if s.Source == nil || s.Source.Pty == nil {
			continue
		}
		if devName == "" || devName == fmt.Sprintf("serial%d", i) || devName == fmt.Sprintf("console%d", i) ||
			(s.Alias != nil && s.Alias.Name == devName) {
			path = s.Source.Pty.Path
			break
		}
	}
	d.Unlock()
	if path == "" {
		what := "a pty serial console"
		if devName != "" {
			what = fmt.Sprintf("a pty console %q", devName)
		}
		return nil, fmt.Errorf("domain '%s' has no %s: %w", name, what, virt.ErrNotFound)
	}
	f, err := openConsolePTY(path)
	if err != nil {
		return nil, fmt.Errorf("domain '%s': %w", name, err)
	}
	return f, nil
}

// openConsolePTY opens the pty of a guest's console, not as a controlling
// terminal, in raw mode: bytes pass unchanged both ways, with no echo and
// no line editing in between.
func openConsolePTY(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, virt.Errorf(virt.ErrUnavailable, "opening console %s: %w", path, err)
	}
	if _, err := term.MakeRaw(int(f.Fd())); err != nil {
		f.Close()
		return nil, virt.Errorf(virt.ErrInternal, "console %s: %w", path, err)
	}
	return f, nil
}
