package controller

// #cgo CFLAGS: -O2 -Wall -Werror
// #include "nsinit.h"
import "C"

// ContainerArg, as the first argument of the driver executable, selects
// the container helper: C code (nsinit.c) that runs before the Go runtime
// starts.
const ContainerArg = C.VIRTD_LXC_CONTAINER_ARG
