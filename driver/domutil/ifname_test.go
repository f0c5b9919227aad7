package domutil

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
)

func TestCheckInterfaceName(t *testing.T) {
	for _, good := range []string{
		"br0", "virbr0", "vnet12", "eth0.100", "a", "-", "...", "x..y",
		"br-lan_1", "0123456789abcde", // 15 bytes
		"é", "brücke", // the kernel takes any byte but those refused below
		"a#b", "'q", `"q`, `a\b`, // the kernel takes them (ip -batch would misread some)
	} {
		if err := CheckInterfaceName(good); err != nil {
			t.Errorf("CheckInterfaceName(%q): %v", good, err)
		}
	}
	for _, tc := range []struct{ name, rule string }{
		{"", "is empty"},
		{"0123456789abcdef", "is 16 bytes long (at most 15)"},
		{"brückebrückeXY", "is 16 bytes long"}, // 14 characters
		{".", "is . or .."},
		{"..", "is . or .."},
		{"../../../etc", "contains '/'"},
		{"a/b", "contains '/'"},
		{"/", "contains '/'"},
		{"eth0:1", "contains ':'"},
		{"vnet%d", "contains '%'"},
		{"a b", "contains whitespace"},
		{" br0", "contains whitespace"},
		{"br0 ", "contains whitespace"},
		{"a\tb", "contains whitespace"},
		{"a\nb", "contains whitespace"},
		{"a\vb", "contains whitespace"},
		{"a\fb", "contains whitespace"},
		{"a\rb", "contains whitespace"},
		{"a\u2003b", "contains whitespace"},
		{"a\u00a0b", "contains the byte 0xa0"},
		{"à", "contains the byte 0xa0"}, // U+00E0 is c3 a0, and the kernel's isspace(0xa0) holds
		{"a\x00b", "contains a control character"},
		{"a\x1bb", "contains a control character"},
		{"a\x7fb", "contains a control character"},
		{"a\u009bb", "contains a control character"}, // CSI, a C1 control
	} {
		err := CheckInterfaceName(tc.name)
		if !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("CheckInterfaceName(%q) = %v, want an invalid argument", tc.name, err)
			continue
		}
		if want := fmt.Sprintf("interface name %q %s", tc.name, tc.rule); !strings.Contains(err.Error(), want) {
			t.Errorf("CheckInterfaceName(%q) = %q, want it to say %q", tc.name, err, want)
		}
	}
}
