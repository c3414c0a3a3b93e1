// Command steve is Rancher's Steve API server at the version Harvester v1.6.0
// embeds (github.com/rancher/steve v0.5.6; Harvester serves /v1/harvester from
// it), run stand-alone against the cluster named by --kubeconfig, for the
// harvester-upgrade-bff tests to compare the BFF's Steve rendering with.
//
// It is Steve's own main (github.com/rancher/steve@v0.5.6/main.go, Apache-2.0)
// plus two flags v0.5.6 lacks:
//   - --enable-header-auth, as Steve v0.10.2 defines it
//     (pkg/server/cli/clicontext.go): a request's Impersonate-User and
//     Impersonate-Group headers name its caller, and a request without them
//     is the admin; Steve then talks to the API server impersonating that
//     caller, so the API server's RBAC decides what the caller sees.
//   - --bind-host, so that the server listens on loopback only.
package main

import (
	"context"
	"net/http"
	"os"

	"github.com/rancher/dynamiclistener/server"
	steveauth "github.com/rancher/steve/pkg/auth"
	"github.com/rancher/steve/pkg/debug"
	steveserver "github.com/rancher/steve/pkg/server"
	stevecli "github.com/rancher/steve/pkg/server/cli"
	"github.com/rancher/steve/pkg/ui"
	"github.com/rancher/steve/pkg/version"
	"github.com/rancher/wrangler/v3/pkg/kubeconfig"
	"github.com/rancher/wrangler/v3/pkg/ratelimit"
	"github.com/rancher/wrangler/v3/pkg/signals"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"
	"k8s.io/apiserver/pkg/authentication/user"
)

var (
	config           stevecli.Config
	debugconfig      debug.Config
	enableHeaderAuth bool
	bindHost         string
)

func main() {
	app := cli.NewApp()
	app.Name = "steve"
	app.Version = version.FriendlyVersion()
	app.Usage = "Steve v0.5.6 with v0.10.2's --enable-header-auth"
	app.Flags = append(
		stevecli.Flags(&config),
		debug.Flags(&debugconfig)...)
	app.Flags = append(app.Flags,
		cli.BoolFlag{
			Name:        "enable-header-auth",
			Usage:       "Use HTTP header Impersonate-User and Impersonate-Group to impersonate a user and groups (default is admin and system:masters group)",
			Destination: &enableHeaderAuth,
		},
		cli.StringFlag{
			Name:        "bind-host",
			Value:       "127.0.0.1",
			Usage:       "Address to listen on",
			Destination: &bindHost,
		},
	)
	app.Action = run

	if err := app.Run(os.Args); err != nil {
		logrus.Fatal(err)
	}
}

func run(_ *cli.Context) error {
	ctx := signals.SetupSignalContext()
	debugconfig.MustSetupDebug()
	s, err := toServer(ctx, debugconfig.SQLCache)
	if err != nil {
		return err
	}
	return s.ListenAndServe(ctx, config.HTTPSListenPort, config.HTTPListenPort, &server.ListenOpts{
		DisplayServerLogs: true,
		BindHost:          bindHost,
	})
}

// toServer is stevecli.Config.ToServer of v0.5.6 with the header
// authentication of v0.10.2's ToServer.
func toServer(ctx context.Context, sqlCache bool) (*steveserver.Server, error) {
	var auth steveauth.Middleware

	restConfig, err := kubeconfig.GetNonInteractiveClientConfigWithContext(config.KubeConfig, config.Context).ClientConfig()
	if err != nil {
		return nil, err
	}
	restConfig.RateLimiter = ratelimit.None

	if config.WebhookConfig.WebhookAuthentication {
		auth, err = config.WebhookConfig.WebhookMiddleware()
		if err != nil {
			return nil, err
		}
	}

	if enableHeaderAuth {
		impersonateOrAdmin := func(req *http.Request) (user.Info, bool, error) {
			info, ok, err := steveauth.Impersonation(req)
			if ok || err != nil {
				return info, ok, err
			}
			return steveauth.AlwaysAdmin(req)
		}
		auth = steveauth.ToMiddleware(steveauth.AuthenticatorFunc(impersonateOrAdmin))
	}

	return steveserver.New(ctx, restConfig, &steveserver.Options{
		AuthMiddleware: auth,
		Next:           ui.New(config.UIPath),
		SQLCache:       sqlCache,
	})
}
