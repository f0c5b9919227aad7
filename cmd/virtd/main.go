// The virtd program is the virtualization daemon: it serves clients on unix
// sockets and routes each connection to a driver executable
// (virtd-driver-<name>) that it launches on demand. See `virtd -help`.
package main

import (
	"context"
	"os"

	"github.com/virtd/virtd/daemon"
)

func main() {
	os.Exit(daemon.Main(context.Background(), os.Args[1:], os.Stderr))
}
