// The virtd-driver-xen program is virtd's Xen driver, serving xen:///system
// through libxl. It is the only virtd executable that links Xen's
// libraries. virtd launches it; it is not meant to be run by hand.
package main

import (
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/xen"
)

func main() { driver.Serve(xen.New) }
