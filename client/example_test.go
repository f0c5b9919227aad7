package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/virt"
)

// Open a connection, list every domain and power one off. It needs a
// running virtd with the test driver installed.
func Example() {
	ctx := context.Background()
	c, err := client.Open(ctx, "test:///default")
	if err != nil {
		log.Fatal(err) // e.g. "cannot connect to virtd at /run/virtd/virtd-sock: no such file (is virtd running?)"
	}
	defer c.Close(ctx)

	domains, err := c.ListDomains(ctx, 0) // 0: active and inactive
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range domains {
		s := d.Snapshot()
		fmt.Printf("%-10s %s\n", d.Name(), s.State)
	}

	d, err := c.LookupByName(ctx, "test")
	if errors.Is(err, client.ErrNotFound) {
		fmt.Println("no domain named test")
		return
	} else if err != nil {
		log.Fatal(err)
	}
	// Destroy powers the guest off; the definition stays.
	if err := d.Destroy(ctx); err != nil && !errors.Is(err, client.ErrFailedPrecondition) {
		log.Fatal(err)
	}
	state, reason, err := d.State(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%s)\n", state, virt.ReasonString(state, reason)) // shut off (destroyed)
}

// Watch lifecycle events for a minute, printing them the way `virsh event`
// does.
func ExampleConn_WatchEvents() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Open(ctx, "test:///default")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())

	stream, err := c.WatchEvents(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for ev := range stream.Events() {
		fmt.Printf("event 'lifecycle' for domain '%s': %s %s\n",
			ev.Domain.Name, ev.Type, virt.EventDetailString(ev.Type, ev.Detail))
	}
	if err := stream.Err(); err != nil {
		log.Fatal(err) // the daemon went away
	}
}

// List the drivers installed in the daemon, through the admin socket.
func ExampleOpenAdmin() {
	ctx := context.Background()
	a, err := client.OpenAdmin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	list, err := a.Drivers(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range list.Drivers {
		fmt.Println(d.Name, d.State, d.Health, d.Path)
	}
	for _, r := range list.Rejected {
		fmt.Println("rejected", r.Path+":", r.Reason)
	}
}

// Parse a URI the way Open does: the daemon sees it without transport and
// socket.
func ExampleParseURI() {
	u, err := client.ParseURI("qemu+unix:///system?socket=/tmp/root/run/virtd/virtd-sock")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Scheme, u.Transport, u.Socket)
	fmt.Println(u.DaemonURI())
	// Output:
	// qemu unix /tmp/root/run/virtd/virtd-sock
	// qemu:///system
}
