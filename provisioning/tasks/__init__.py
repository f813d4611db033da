"""doit task creators: thin plain dicts over the library (validate, package, test, publish, resolve, install)."""
