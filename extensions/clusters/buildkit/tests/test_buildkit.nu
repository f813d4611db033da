# Tests of the buildkit scripts' pure helpers: `nu tests/test_buildkit.nu`
use std/assert
use ../scripts/install.nu [kubectl-args apply-order buildctl-addr]

def "test kubectl-args" [] {
    assert equal (kubectl-args "apply" "buildkit" "a.yaml") ["kubectl" "apply" "--namespace" "buildkit" "-f" "a.yaml"]
    assert equal (kubectl-args "delete" "buildkit" "a.yaml" --context "ci" | last 2) ["--context" "ci"]
}

def "test apply-order" [] {
    assert equal (apply-order ["20-b.yaml" "buildkitd.toml" "10-a.yml"]) ["10-a.yml" "20-b.yaml"]
}

def "test buildctl-addr" [] {
    assert equal (buildctl-addr "buildkit" 1234) "tcp://buildkitd.buildkit.svc.cluster.local:1234"
}

def main [] {
    test kubectl-args
    test apply-order
    test buildctl-addr
    print "buildkit: 3 tests passed"
}
