package driver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// echoDriver adds the optional features to the test driver: a console
// that echoes what it is sent, upper-cased, and a converter to "upper".
type echoDriver struct{ driver.Driver }

func (echoDriver) OpenConsole(ctx context.Context, uuid, dev string) (io.ReadWriteCloser, error) {
	if uuid != "6695eb01-f6a4-8304-79aa-97f2502e193f" {
		return nil, fmt.Errorf("no domain %s: %w", uuid, virt.ErrNotFound)
	}
	a, b := net.Pipe()
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := b.Read(buf)
			if err != nil {
				b.Close()
				return
			}
			if _, err := b.Write([]byte(strings.ToUpper(string(buf[:n])))); err != nil {
				return
			}
		}
	}()
	return a, nil
}

func (echoDriver) DomainXMLToNative(_ context.Context, format, xml string) (string, error) {
	if format != "upper" {
		return "", fmt.Errorf("format %q: %w", format, virt.ErrNotSupported)
	}
	return strings.ToUpper(xml), nil
}

func (echoDriver) DomainXMLFromNative(_ context.Context, format, cfg string) (string, error) {
	return strings.ToLower(cfg), nil
}

func TestConsoleThroughShims(t *testing.T) {
	d := drivertest.Pair(t, echoDriver{testdriver.New(driver.Env{})})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	con, err := d.(driver.Consoler).OpenConsole(ctx, "6695eb01-f6a4-8304-79aa-97f2502e193f", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := con.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(con, got); err != nil || string(got) != "HELLO" {
		t.Fatalf("console echoed %q, %v", got, err)
	}
	con.Close()
	info, err := d.Info(ctx)
	if err != nil || strings.Join(info.Features, ",") != "domxml-to-native,domxml-from-native,console,records" {
		t.Fatalf("features %v, %v: want the optional ones listed", info.Features, err)
	}
	if _, err := d.(driver.Consoler).OpenConsole(ctx, "00000000-0000-0000-0000-000000000000", ""); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("console of an unknown domain: %v", err)
	}
}

func TestConverterThroughShims(t *testing.T) {
	d := drivertest.Pair(t, echoDriver{testdriver.New(driver.Env{})})
	ctx := context.Background()
	conv := d.(driver.NativeConverter)
	if out, err := conv.DomainXMLToNative(ctx, "upper", "<domain/>"); err != nil || out != "<DOMAIN/>" {
		t.Fatalf("to native: %q, %v", out, err)
	}
	if _, err := conv.DomainXMLToNative(ctx, "other", "x"); !errors.Is(err, virt.ErrNotSupported) {
		t.Fatalf("unknown format: %v", err)
	}
	if out, err := conv.DomainXMLFromNative(ctx, "upper", "ABC"); err != nil || out != "abc" {
		t.Fatalf("from native: %q, %v", out, err)
	}
}

func TestOptionalFeaturesAbsent(t *testing.T) {
	d := drivertest.Pair(t, testdriver.New(driver.Env{}))
	ctx := context.Background()
	if _, err := d.(driver.NativeConverter).DomainXMLToNative(ctx, "qemu-argv", "<domain/>"); !errors.Is(err, virt.ErrNotSupported) {
		t.Fatalf("to native on a driver without it: %v", err)
	}
	if _, err := d.(driver.Consoler).OpenConsole(ctx, "6695eb01-f6a4-8304-79aa-97f2502e193f", ""); !errors.Is(err, virt.ErrNotSupported) {
		t.Fatalf("console on a driver without it: %v", err)
	}
}
