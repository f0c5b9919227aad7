package lxc

import (
	"context"
	"errors"
	"fmt"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/lxc/lxcconf"
	"github.com/virtd/virtd/virt"
)

// NativeFormat is the native configuration format the driver imports.
const NativeFormat = "lxc-tools"

// DomainXMLFromNative converts an LXC tools configuration (format
// "lxc-tools") to domain XML, as `virsh domxml-from-native` does.
func (drv *Driver) DomainXMLFromNative(ctx context.Context, format, config string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if format != NativeFormat {
		return "", fmt.Errorf("native format %q is not supported by the lxc driver (only %s): %w", format, NativeFormat, virt.ErrNotSupported)
	}
	doc, err := lxcconf.ToDomainXML(config)
	if errors.Is(err, virt.ErrInvalidArgument) {
		return "", fmt.Errorf("%s configuration: %w", NativeFormat, err)
	}
	if err != nil {
		return "", virt.Errorf(virt.ErrInvalidArgument, "%s configuration: %w", NativeFormat, err)
	}
	return doc, nil
}

// DomainXMLToNative is not supported: the driver does not write LXC tools
// configurations.
func (drv *Driver) DomainXMLToNative(ctx context.Context, format, xml string) (string, error) {
	return "", fmt.Errorf("converting domain XML to %q is not supported by the lxc driver: %w", format, virt.ErrNotSupported)
}

var (
	_ driver.NativeConverter = (*Driver)(nil)
	_ driver.Consoler        = (*Driver)(nil)
)
