// Package version holds virtd's version, one for every program and
// package the repository builds. The Makefile stamps it from the VERSION
// file with -ldflags "-X github.com/virtd/virtd/internal/version.Version=...".
package version

// Version is virtd's version.
var Version = "0.0.0-dev"
