// Package client is the Go client library for virtd: it parses libvirt
// style connection URIs, dials the daemon's unix sockets and offers typed
// calls in libvirt's vocabulary. No protobuf or gRPC type appears in its API.
//
// A connection is opened on a URI such as test:///default or
// qemu:///system; the daemon routes it to the driver that serves the URI's
// scheme:
//
//	c, err := client.Open(ctx, "test:///default")
//	if err != nil { ... }
//	defer c.Close(ctx)
//	d, err := c.LookupByName(ctx, "test")
//	if errors.Is(err, client.ErrNotFound) { ... }
//	err = d.Destroy(ctx) // powers the guest off; the definition stays
//
// Sockets: by default the read-write socket is <rundir>/virtd-sock, the
// read-only one <rundir>/virtd-sock-ro and the admin one
// <rundir>/virtd-admin-sock, where rundir is /run/virtd unless the
// environment variable VIRTD_RUN_DIR names another directory. A URI's
// ?socket=PATH parameter, or the WithSocket option, overrides the socket.
//
// Errors keep their kind across the daemon and the driver: compare them
// with errors.Is against ErrNotFound, ErrAlreadyExists and the other kinds
// re-exported here (they are package virt's kinds).
package client
