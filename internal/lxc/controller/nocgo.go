//go:build !cgo

package controller

// The container helper is C (nsinit.c): the LXC driver cannot be built
// without cgo. This line makes the build say so.
var _ = virtd_driver_lxc_needs_cgo_and_a_C_compiler
