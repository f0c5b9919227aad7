package domutil

import (
	"fmt"
	"unicode"

	"github.com/virtd/virtd/virt"
)

// MaxInterfaceName is the longest Linux network interface name, in bytes
// (IFNAMSIZ less the terminating NUL).
const MaxInterfaceName = 15

// CheckInterfaceName checks that name can be the name of a Linux network
// interface (a bridge, tap or veth device) before a driver makes it part
// of a path such as /sys/class/net/NAME or hands it to the kernel. It holds
// to the kernel's dev_valid_name: 1 to 15 bytes, not "." or "..", no '/',
// ':' or whitespace (the kernel's isspace, which takes the byte 0xa0 for
// one). It also refuses control characters, and '%', which the kernel
// reads as a template for a name it picks (so no device has one in its
// name, and a tap made with one would get another). The error, of kind
// virt.ErrInvalidArgument, names the name and the rule it breaks.
func CheckInterfaceName(name string) error {
	bad := func(rule string) error {
		return fmt.Errorf("interface name %q %s: %w", name, rule, virt.ErrInvalidArgument)
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > MaxInterfaceName:
		return bad(fmt.Sprintf("is %d bytes long (at most %d)", len(name), MaxInterfaceName))
	case name == "." || name == "..":
		return bad("is . or .. (names of directories)")
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '/':
			return bad("contains '/'")
		case ':':
			return bad("contains ':'")
		case '%':
			return bad("contains '%' (a template for a name the kernel picks)")
		case 0xa0:
			return bad("contains the byte 0xa0 (a space to the kernel)")
		}
	}
	for _, r := range name {
		switch {
		case unicode.IsSpace(r):
			return bad("contains whitespace")
		case unicode.IsControl(r):
			return bad("contains a control character")
		}
	}
	return nil
}
