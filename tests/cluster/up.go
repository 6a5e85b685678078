package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	genericapiserver "k8s.io/apiserver/pkg/server"
	logsapi "k8s.io/component-base/logs/api/v1"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

const (
	startTimeout  = 120 * time.Second
	shutdownGrace = 3 * time.Second
)

func runUp(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (PKI, etcd data, kubeconfig); created, wiped on start")
	crdDir := fs.String("crd-dir", "", "directory of CustomResourceDefinition YAML files to install before reporting ready")
	watchPid := fs.Int("watch-pid", 0, "shut down when this process exits (0: do not watch)")
	_ = fs.Parse(args)
	if *dir == "" {
		return errors.New("--dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return err
	}
	pki := filepath.Join(abs, "pki")
	if err := writePKI(pki); err != nil {
		return fmt.Errorf("creating PKI: %w", err)
	}

	started := time.Now()
	etcd, etcdURL, err := startEtcd(filepath.Join(abs, "etcd"))
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	defer closeEtcd(etcd) // after the apiserver has stopped: the deferred call runs last

	port, err := freePort()
	if err != nil {
		return err
	}
	// Two components in one process share the global logging configuration.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	apiDone := make(chan error, 1)
	api := apiserverapp.NewAPIServerCommand() // installs the SIGTERM/SIGINT handler
	api.SetArgs(apiserverArgs(pki, etcdURL, port))
	go func() { apiDone <- api.Execute() }()

	stop := make(chan string, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT) // beside the apiserver's own handler
	go func() { stop <- (<-signals).String() }()
	if *watchPid > 0 {
		go watchProcess(*watchPid, stop)
	}

	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	kubeconfig := filepath.Join(abs, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, pki, filepath.Join(pki, adminCrtFile), filepath.Join(pki, adminKeyFile)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := waitReady(ctx, server, pki, apiDone); err != nil {
		return err
	}

	kcm := kcmapp.NewControllerManagerCommand()
	kcm.SetArgs(controllerManagerArgs(kubeconfig, pki))
	kcmDone := make(chan error, 1)
	go func() { kcmDone <- kcm.Execute() }()

	clients, err := newClients(kubeconfig)
	if err != nil {
		return err
	}
	if err := waitForDefaultServiceAccount(ctx, clients, kcmDone); err != nil {
		return err
	}
	if *crdDir != "" {
		if err := installCRDs(ctx, clients, *crdDir); err != nil {
			return fmt.Errorf("installing CRDs from %s: %w", *crdDir, err)
		}
	}
	fmt.Fprintf(os.Stderr, "control plane ready in %.1fs at %s\n", time.Since(started).Seconds(), server)
	fmt.Printf("ready %s\n", kubeconfig)
	_ = os.Stdout.Sync()

	select {
	case err := <-apiDone:
		if err != nil {
			return fmt.Errorf("kube-apiserver: %w", err)
		}
		return nil
	case err := <-kcmDone:
		return fmt.Errorf("kube-controller-manager stopped: %v", err)
	case why := <-stop:
		fmt.Fprintf(os.Stderr, "%s: shutting down\n", why)
		// The apiserver drains open watches (KCM's among them) and KCM cannot be stopped at all:
		// give the drain a short grace, then let the process exit.
		select {
		case <-apiDone:
		case <-time.After(shutdownGrace):
		}
		return nil
	}
}

func apiserverArgs(pki, etcdURL string, port int) []string {
	p := func(name string) string { return filepath.Join(pki, name) }
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1", // no default route needed
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + pki,
		"--tls-cert-file=" + p(servingCrtFile),
		"--tls-private-key-file=" + p(servingKeyFile),
		"--client-ca-file=" + p(caCertFile),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-signing-key-file=" + p(saKeyFile),
		"--service-account-key-file=" + p(saKeyFile),
		"--api-audiences=https://kubernetes.default.svc",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=0",
	}
}

func controllerManagerArgs(kubeconfig, pki string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller",
		"--leader-elect=false",
		"--secure-port=0", // no KCM HTTPS listener on all interfaces
		"--use-service-account-credentials=false",
		"--root-ca-file=" + filepath.Join(pki, caCertFile),
		"--concurrent-gc-syncs=5",
		"--v=0",
	}
}

func startEtcd(dir string) (*embed.Etcd, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.UnsafeNoFsync = true // test data: speed over durability
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return nil, "", errors.New("etcd did not become ready within 60s")
	}
	go func() {
		if err := <-e.Err(); err != nil {
			fmt.Fprintf(os.Stderr, "etcd failed: %v\n", err)
			genericapiserver.RequestShutdown()
		}
	}()
	return e, client.String(), nil
}

func waitReady(ctx context.Context, server, pki string, apiDone <-chan error) error {
	caPEM, err := os.ReadFile(filepath.Join(pki, caCertFile))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, adminCrtFile), filepath.Join(pki, adminKeyFile))
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	for {
		// /readyz first, then the default namespace exists (what envtest waits for).
		if ok(hc, server+"/readyz") && ok(hc, server+"/api/v1/namespaces/default") {
			return nil
		}
		select {
		case err := <-apiDone:
			return fmt.Errorf("kube-apiserver exited during start-up: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready within %s", startTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ok(hc *http.Client, u string) bool {
	resp, err := hc.Get(u)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// watchProcess reports on stop once pid no longer exists, so that a test run that dies
// (even by SIGKILL) leaves no control plane behind.
func watchProcess(pid int, stop chan<- string) {
	for {
		time.Sleep(500 * time.Millisecond)
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			genericapiserver.RequestShutdown() // as SIGTERM would; a second request would exit(1)
			stop <- fmt.Sprintf("watched process %d exited", pid)
			return
		}
	}
}

// closeEtcd closes etcd, bounded: it waits for the apiserver's client connections, and the data
// is thrown away anyway (the next start wipes --dir).
func closeEtcd(e *embed.Etcd) {
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
	}
}
