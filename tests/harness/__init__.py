"""The one test harness: every process the tests start, on 127.0.0.1 and free ports, with
throw-away data, stopped by the fixture that started it.

- `processes`: the life of a child process (spawn, log, ready, stop, kill), written once,
  and `ServiceProcess`, our own `python -m …` services.
- `servers`: Redis, PostgreSQL and PGlite.
- `kube`: the envtest control plane (etcd, kube-apiserver, kube-controller-manager).
- `engine`, `dbproc`, `ws`, `api`, `mm`, `operator`: each component as a process, and what
  tests read, enqueue or send around it.
- `stacks`: Redis, a database, engines, dbproc and the api composed into one stack.
"""
