// The virtd-driver-qemu program is virtd's QEMU driver, serving
// qemu:///system and qemu:///session. virtd launches it; it is not meant to
// be run by hand.
package main

import (
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/qemu"
)

func main() { driver.Serve(qemu.New) }
