#!/usr/bin/env nu
# Initialise the first control plane, or join this node, with the rendered kubeadm config.

# The kubeadm command for a role: init on the first control plane, join elsewhere.
export def kubeadm-command [role: string, first: bool, config: string]: nothing -> list<string> {
    match [$role $first] {
        ["controlplane" true] => ["kubeadm" "init" "--config" $config "--upload-certs"]
        ["controlplane" false] => ["kubeadm" "join" "--config" $config "--control-plane"]
        ["worker" _] => ["kubeadm" "join" "--config" $config]
        _ => { error make {msg: $"unknown role ($role)"} }
    }
}

# Phases to skip: kube-proxy when the CNI replaces it.
export def skip-phases [kube_proxy: bool]: nothing -> list<string> {
    if $kube_proxy { [] } else { ["--skip-phases=addon/kube-proxy"] }
}

# Where kubectl finds the admin credentials for a user's home.
export def kubeconfig-target [home: string]: nothing -> string {
    $home | path join ".kube" "config"
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
    --role: string = "controlplane"                     # controlplane or worker
    --first                                             # this is the first control plane (kubeadm init)
    --no-kube-proxy                                     # leave kube-proxy out (Cilium replaces it)
    --work-dir: path = "/tmp/provisioning/kubernetes"   # rendered kubeadm-config.yaml
    --admin-user: string = "root"                       # gets ~/.kube/config on control planes
    --dry-run                                           # print the steps instead of running them
] {
    let config = ($work_dir | path join "kubeadm-config.yaml")
    let cmd = (kubeadm-command $role $first $config)
    let phases = if $role == "controlplane" and $first { skip-phases (not $no_kube_proxy) } else { [] }
    run-step $dry_run ($cmd ++ $phases)
    if $role == "controlplane" {
        let home = if $admin_user == "root" { "/root" } else { $"/home/($admin_user)" }
        let target = (kubeconfig-target $home)
        run-step $dry_run [install -D -m "0600" -o $admin_user /etc/kubernetes/admin.conf $target]
    }
}
