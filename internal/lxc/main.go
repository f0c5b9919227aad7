package lxc

import (
	"os"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/lxc/controller"
)

// RunHelper runs the controller or container mode when the executable was
// re-run in one of them (its first argument says so), and exits; otherwise
// it returns. A test binary that starts containers calls it from TestMain.
func RunHelper() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case controller.ControllerArg:
		os.Exit(controller.Main(os.Args[2:]))
	case controller.ContainerArg:
		os.Exit(controller.ContainerMain())
	}
}

// Main is virtd-driver-lxc's main: a helper mode, or the driver served to
// its virtd host.
func Main() {
	RunHelper()
	driver.Serve(New)
}
