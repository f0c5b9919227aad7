// The virtd-driver-test program is virtd's in-memory test driver, serving
// test:///default. virtd launches it; it is not meant to be run by hand.
package main

import (
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
)

func main() { driver.Serve(testdriver.New) }
