#!/usr/bin/env nu
# Install or upgrade the ingress-nginx Helm release (values rendered by the core).
# ingress-nginx controller: HTTP(S) routing into the cluster

const CHART_VERSION = "4.8.3"

# The helm command that installs or upgrades the release.
export def helm-args [release: string, chart: string, version: string, namespace: string, values: string]: nothing -> list<string> {
    [
        "helm" "upgrade" "--install" $release $chart
        "--version" $version "--namespace" $namespace "--create-namespace"
        "--values" $values "--wait" "--timeout" "10m"
    ]
}

# Print or run one step.
def run-step [dry_run: bool, cmd: list<string>] {
    if $dry_run {
        print $"would run: ($cmd | str join ' ')"
    } else {
        run-external ...$cmd
    }
}

def main [
    --chart: string = "oci://localhost:5000/charts/ingress-nginx"  # Helm chart
    --chart-version: string = $CHART_VERSION                       # chart version (controller 1.9.4)
    --namespace: string = "ingress-nginx"                          # release namespace
    --release: string = "ingress-nginx"                            # release name
    --work-dir: path = "/tmp/provisioning/nginx-ingress"           # rendered values.yaml
    --dry-run                                                      # print the steps instead of running them
] {
    run-step $dry_run (helm-args $release $chart $chart_version $namespace ($work_dir | path join "values.yaml"))
    if not $dry_run { print $"ingress-nginx chart ($chart_version) installed in ($namespace)" }  # a dry run only shows the steps
}
