#!/usr/bin/env nu
# Deploy the web cluster: apply the rendered manifests and wait for the app to roll out.
# Web application stack: ingress, PostgreSQL and Redis on Kubernetes

const NAME = "web"

# The kubectl command line for one action on one manifest.
export def kubectl-args [action: string, namespace: string, file: string, --context: string]: nothing -> list<string> {
    let base = ["kubectl" $action "--namespace" $namespace "-f" $file]
    if $context == null { $base } else { $base ++ ["--context" $context] }
}

# Manifests are applied in name order, so prefixes (00-, 10-) order them.
export def apply-order [files: list<string>]: nothing -> list<string> {
    $files | where {|f| ($f | str ends-with ".yaml") or ($f | str ends-with ".yml") } | sort
}

# The DATABASE_URL the app receives; the password is read from a secret at run time.
export def database-url [db: record]: nothing -> string {
    $"postgres://($db.user):$\(DATABASE_PASSWORD\)@($db.host):($db.port? | default 5432)/($db.name)?sslmode=require"
}

# The public URL of the app.
export def public-url [domain: string, tls: bool]: nothing -> string {
    $"(if $tls { 'https' } else { 'http' })://($domain)/"
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
    --namespace: string = "web"                           # namespace to deploy into
    --domain: string = "web.example.com"                  # public host name (for the summary)
    --tls                                                 # the ingress serves HTTPS
    --work-dir: path = "/tmp/provisioning/clusters/web"   # rendered manifests
    --context: string                                     # kubectl context (default: current)
    --dry-run                                             # print the steps instead of running them
] {
    let files = (apply-order (glob ($work_dir | path join "*.y*ml")))
    if ($files | is-empty) and not $dry_run {
        error make {msg: $"no manifests in ($work_dir): render the templates first"}
    }
    for f in $files {
        run-step $dry_run (kubectl-args "apply" $namespace $f --context=$context)
    }
    run-step $dry_run [kubectl rollout status --namespace $namespace deployment/web --timeout=300s]
    if not $dry_run { print $"($NAME) deployed: (public-url $domain $tls)" }  # a dry run only shows the steps
}
