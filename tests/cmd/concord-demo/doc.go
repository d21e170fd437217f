// Command concord-demo boots a three-node Concord cluster of systemd
// containers, shows its membership, kills a node and shows the survivors'
// new view, then tears everything down (`make demo`).
package main
