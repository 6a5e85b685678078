package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

type clients struct {
	kube kubernetes.Interface
	ext  apiextensionsclient.Interface
}

func newClients(kubeconfig string) (*clients, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{kube: kube, ext: ext}, nil
}

// writeKubeconfig writes a kubeconfig that trusts the cluster CA and authenticates with a
// client certificate. The CA itself (not the leaf) is embedded: rustls needs the chain's root.
func writeKubeconfig(path, server, pki, certFile, keyFile string) error {
	ca, err := os.ReadFile(filepath.Join(pki, caCertFile))
	if err != nil {
		return err
	}
	crt, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lockstep-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts["lockstep-test"] = &clientcmdapi.Context{Cluster: "lockstep-test", AuthInfo: "user", Namespace: "default"}
	cfg.CurrentContext = "lockstep-test"
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if path == "-" {
		_, err = os.Stdout.Write(out)
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// runKubeconfig mints a client certificate for a restricted user and writes its kubeconfig.
func runKubeconfig(args []string) error {
	fs := flag.NewFlagSet("kubeconfig", flag.ExitOnError)
	dir := fs.String("dir", "", "the state directory given to `cluster up`")
	user := fs.String("user", "", "user name (certificate CN)")
	out := fs.String("out", "-", "where to write the kubeconfig (- for stdout)")
	var groups multiFlag
	fs.Var(&groups, "group", "group (certificate O); repeatable")
	_ = fs.Parse(args)
	if *dir == "" || *user == "" {
		return errors.New("--dir and --user are required")
	}
	pki := filepath.Join(*dir, "pki")
	ca, err := loadCA(pki)
	if err != nil {
		return err
	}
	admin, err := clientcmd.LoadFromFile(filepath.Join(*dir, "kubeconfig"))
	if err != nil {
		return fmt.Errorf("reading the admin kubeconfig: %w", err)
	}
	cluster, found := admin.Clusters["lockstep-test"]
	if !found {
		return errors.New("the admin kubeconfig has no lockstep-test cluster")
	}
	tmp, err := os.MkdirTemp("", "cluster-user-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	crt, key := filepath.Join(tmp, "user.crt"), filepath.Join(tmp, "user.key")
	if err := issueClient(ca, *user, groups, crt, key); err != nil {
		return err
	}
	return writeKubeconfig(*out, cluster.Server, pki, crt, key)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// waitForDefaultServiceAccount proves the controller manager is working.
func waitForDefaultServiceAccount(ctx context.Context, c *clients, kcmDone <-chan error) error {
	for {
		_, err := c.kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case err := <-kcmDone:
			return fmt.Errorf("kube-controller-manager exited during start-up: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("the serviceaccount controller did not create default/default: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// installCRDs server-side-applies every CRD in dir and waits until each is Established.
func installCRDs(ctx context.Context, c *clients, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for {
			doc, err := dec.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.Unmarshal(doc, &crd); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if crd.Name == "" {
				continue
			}
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return err
			}
			force := true
			_, err = c.ext.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.ApplyPatchType, js,
				metav1.PatchOptions{FieldManager: "lockstep-test-cluster", Force: &force})
			if err != nil {
				return fmt.Errorf("%s: applying %s: %w", f, crd.Name, err)
			}
			names = append(names, crd.Name)
		}
	}
	for _, name := range names {
		if err := waitEstablished(ctx, c, name); err != nil {
			return err
		}
	}
	return nil
}

func waitEstablished(ctx context.Context, c *clients, name string) error {
	for {
		crd, err := c.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err == nil {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not Established in time", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
