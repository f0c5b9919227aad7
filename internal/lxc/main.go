package lxc

import (
	"os"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/lxc/controller"
)

// RunHelper runs the controller mode when the executable was re-run in it
// (its first argument says so), and exits; otherwise it returns. A test
// binary that starts containers calls it from TestMain. (The container
// helper needs no call: it runs before main, see controller/nsinit.c.)
func RunHelper() {
	if len(os.Args) < 2 {
		return
	}
	if os.Args[1] == controller.ControllerArg {
		os.Exit(controller.Main())
	}
}

// Main is virtd-driver-lxc's main: the controller mode, or the driver
// served to its virtd host.
func Main() {
	RunHelper()
	driver.Serve(New)
}
