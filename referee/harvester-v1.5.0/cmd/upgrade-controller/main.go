// Command upgrade-controller runs Harvester v1.5.0's upgrade controller
// (pkg/controller/master/upgrade), exactly as Harvester registers it, with one
// controller factory as Harvester's server builds it, against the cluster
// named by $KUBECONFIG.
//
// The harvester-upgrade-bff tests use it as the referee of the simulated
// controller (bff/sandbox/controller.py), which simulates v1.5.0. It is
// referee/harvester's command of the same name without the schedulevmbackup
// controller; v1.5.0's upgrade.Register and config API are the same as v1.6.0's.
//
// KUBECONFIG comes from the environment because a dependency already defines
// the global flag -kubeconfig on the standard flag set.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rancher/lasso/pkg/controller"
	"github.com/rancher/wrangler/v3/pkg/generic"
	"github.com/rancher/wrangler/v3/pkg/schemes"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"

	harvesterv1 "github.com/harvester/harvester/pkg/apis/harvesterhci.io/v1beta1"
	"github.com/harvester/harvester/pkg/config"
	"github.com/harvester/harvester/pkg/controller/master/upgrade"
	"github.com/harvester/harvester/pkg/settings"
)

// namespace is where Harvester keeps its management objects (Upgrades, Versions).
const namespace = "harvester-system"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "upgrade-controller: %v\n", err)
		os.Exit(2)
	}
}

func run() error {
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		return fmt.Errorf("KUBECONFIG is not set: it must name the kubeconfig of the cluster to control")
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("reading KUBECONFIG %s: %w", path, err)
	}
	// Without Harvester's settings controller (not run here) every setting
	// reads its default. Two defaults are changed: the version syncer must
	// never call the public upgrade-responder (its default URL), and the
	// server version is what a cluster that finished the upgrade reports
	// (the controller copies it into status.previousVersion).
	settings.NewSetting(settings.UpgradeCheckerEnabledSettingName, "false")
	if v := os.Getenv("HARVESTER_SERVER_VERSION"); v != "" {
		settings.NewSetting(settings.ServerVersionSettingName, v)
	}
	if os.Getenv("UPGRADE_CONTROLLER_DEBUG") == "1" {
		logrus.SetLevel(logrus.DebugLevel)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	// The same scheme and one shared controller factory, as Harvester's own
	// server builds them (pkg/server: context.go and generateSteveServer).
	scheme := runtime.NewScheme()
	utilruntime.Must(harvesterv1.AddToScheme(scheme))
	utilruntime.Must(kubevirtv1.AddToScheme(scheme))
	utilruntime.Must(schemes.AddToScheme(scheme))
	factory, err := controller.NewSharedControllerFactoryFromConfig(restConfig, scheme)
	if err != nil {
		return fmt.Errorf("controller factory: %w", err)
	}
	ctx, scaled, err := config.SetupScaled(ctx, restConfig, &generic.FactoryOptions{SharedControllerFactory: factory})
	if err != nil {
		return fmt.Errorf("setting up the factories: %w", err)
	}
	options := config.Options{Namespace: namespace, Threadiness: 1, HCIMode: true}
	if err := upgrade.Register(ctx, scaled.Management, options); err != nil {
		return fmt.Errorf("registering the upgrade controller: %w", err)
	}
	// Harvester starts the factories with scaled.Start after registering its
	// controllers; Scaled and Management share one controller factory, so
	// this starts every cache and handler registered above.
	if err := scaled.Start(options.Threadiness); err != nil {
		return fmt.Errorf("starting the controllers: %w", err)
	}
	logrus.Info("upgrade controller started")
	<-ctx.Done()
	logrus.Info("upgrade controller stopping")
	return nil
}
