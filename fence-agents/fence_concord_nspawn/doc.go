// Command fence_concord_nspawn is a ClusterLabs-protocol fence agent for
// systemd-nspawn containers: it kills a container through machined, or
// through the container's leader PID where machined does not run.
package main
