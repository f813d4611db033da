# Tests of the web scripts' pure helpers: `nu tests/test_web.nu`
use std/assert
use ../scripts/install.nu [kubectl-args apply-order database-url public-url]

def "test kubectl" [] {
    assert equal (kubectl-args "apply" "web" "a.yaml") ["kubectl" "apply" "--namespace" "web" "-f" "a.yaml"]
    assert equal (apply-order ["20-ingress.yaml" "00-namespace.yaml" "notes.txt" "10-app.yaml"]) ["00-namespace.yaml" "10-app.yaml" "20-ingress.yaml"]
}

def "test urls" [] {
    let db = {host: "postgres.internal", name: "shop", user: "shop"}
    assert equal (database-url $db) "postgres://shop:$(DATABASE_PASSWORD)@postgres.internal:5432/shop?sslmode=require"
    assert equal (public-url "shop.example.com" true) "https://shop.example.com/"
    assert equal (public-url "shop.example.com" false) "http://shop.example.com/"
}

def main [] {
    test kubectl
    test urls
    print "web: 2 tests passed"
}
