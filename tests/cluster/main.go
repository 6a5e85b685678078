// Command cluster runs a real, single-process Kubernetes control plane for lockstep's tests:
// an embedded etcd, the upstream kube-apiserver (with CRDs, RBAC and TokenRequest) and the
// kube-controller-manager controllers lockstep relies on (garbage collector, namespace,
// service account, root CA publisher). Everything listens on 127.0.0.1 on free ports.
//
//	cluster up --dir DIR [--crd-dir DIR] [--watch-pid PID]
//	    starts the control plane, writes DIR/kubeconfig (admin), prints "ready DIR/kubeconfig"
//	    and runs until SIGTERM/SIGINT, or until PID exits (so a dead test run leaves nothing behind).
//	cluster kubeconfig --dir DIR --user NAME [--group G]... [--out FILE]
//	    mints a client certificate for a restricted user, signed by the cluster's client CA, and
//	    writes a kubeconfig for it (stdout by default). RBAC decides what that user may do.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = runUp(os.Args[2:])
	case "kubeconfig":
		err = runKubeconfig(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cluster up --dir DIR [--crd-dir DIR] [--watch-pid PID]\n       cluster kubeconfig --dir DIR --user NAME [--group G]... [--out FILE]")
	os.Exit(2)
}
