// Command fence_concord_redfish is a ClusterLabs-protocol fence agent for
// Redfish BMCs.
package main
