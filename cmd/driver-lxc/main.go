// The virtd-driver-lxc program is virtd's LXC driver, serving lxc:///system:
// real Linux containers. virtd launches it; it also runs, re-executed by
// itself, as the controller of each container.
package main

import "github.com/virtd/virtd/internal/lxc"

func main() { lxc.Main() }
