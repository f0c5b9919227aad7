// The first argument that selects the container helper (nsinit.c); Go's
// ContainerArg is the same string.
#define VIRTD_LXC_CONTAINER_ARG "__virtd-lxc-container"
