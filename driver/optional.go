package driver

import (
	"context"
	"io"
)

// Optional features. A driver implements them by having the methods; the
// shims find them by type assertion, and a driver without one answers
// virt.ErrNotSupported. Info.Features names them for clients.
const (
	FeatureToNative   = "domxml-to-native"
	FeatureFromNative = "domxml-from-native"
	FeatureConsole    = "console"
)

// NativeConverter converts between domain XML and a hypervisor's native
// configuration (virsh domxml-to-native / domxml-from-native). A format
// the driver does not know is refused with virt.ErrNotSupported.
type NativeConverter interface {
	DomainXMLToNative(ctx context.Context, format, xml string) (string, error)
	DomainXMLFromNative(ctx context.Context, format, config string) (string, error)
}

// Consoler attaches to a domain's text console (virsh console). devName ""
// means the first console or serial port. Closing the stream detaches.
type Consoler interface {
	OpenConsole(ctx context.Context, uuid, devName string) (io.ReadWriteCloser, error)
}

// withOptionalFeatures adds the optional features impl implements.
func withOptionalFeatures(features []string, impl Driver) []string {
	has := map[string]bool{}
	for _, f := range features {
		has[f] = true
	}
	add := func(f string, ok bool) {
		if ok && !has[f] {
			features = append(features, f)
		}
	}
	_, conv := impl.(NativeConverter)
	_, con := impl.(Consoler)
	add(FeatureToNative, conv)
	add(FeatureFromNative, conv)
	add(FeatureConsole, con)
	return features
}
