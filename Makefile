# ha-web-lab: the two commands a newcomer needs are `make up` (the lab) and `make test`.
# Everything else is a step of those, or a tool for the curious.
SHELL := /bin/bash
# STACK=NAME picks the stack. Unset: `local` for what deploys (up, down, preview, check: the lab
# `make up` builds from nothing, Pulumi.local.yaml) and `dev`, the tutorial's stack, for what
# only renders or runs in namespaces (render, lab: its drills are timed for namespaces).
STACK ?=
DEPLOY_STACK = $(or $(STACK),local)
LAB_STACK = $(or $(STACK),dev)

.PHONY: help up down test test-fast fresh-test fresh-bench fresh-boot bootstrap bootstrap-tests lint unit render lab lab-down engine libvirtd-start libvirtd-stop preview destroy check e2e e2e-fortigate bench docs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

up: bootstrap ## a working lab from nothing: libvirtd, KVM probe, image, key, `pulumi up` (STACK: local)
	venv/bin/python -m halab up --stack $(DEPLOY_STACK)

down: ## `pulumi destroy` of STACK, then the project's libvirtd if it used it: nothing left
	venv/bin/python -m halab down --stack $(DEPLOY_STACK)

test: ## install what the tests need, then lint, type-check and run every test
	scripts/test.sh

test-fast: ## the quick loop for contributors: every test but the namespace labs, the real CLI and the validators (no root)
	venv/bin/python -m pytest -q -m "not lab and not engine and not validators"

# RELEASE=bookworm|trixie picks the Debian release of the fresh root (default: this machine's).
RELEASE ?=

fresh-test: bootstrap ## `make test` in a pristine Debian root (RELEASE; mmdebstrap; root; CI runs this)
	python3 -m halab.machine.fresh $(if $(RELEASE),--release $(RELEASE))

fresh-bench: bootstrap ## `make bench` in a pristine Debian root: the failover figures of RELEASE's own daemons (BENCH_ARGS as for make bench)
	python3 -m halab.machine.fresh --bench $(if $(RELEASE),--release $(RELEASE)) $(if $(BENCH_ARGS),-- $(BENCH_ARGS))

fresh-boot: bootstrap ## a pristine Debian root booted with systemd: make up's and make test's installs start nothing (LAB=1: then make up, check, down at its qemu:///system; LAB=2: two labs at once)
	python3 -m halab.machine.fresh --boot $(if $(RELEASE),--release $(RELEASE)) $(if $(LAB),--lab) $(if $(filter 2,$(LAB)),--second-lab)

bootstrap: ## the Debian packages `make up` needs and the virtualenv (idempotent; nothing left serving)
	scripts/bootstrap.sh host

bootstrap-tests: ## that and the packages only the tests and the namespace lab need (their daemons never start here)
	scripts/bootstrap.sh tests

lint: bootstrap ## ruff and mypy only
	venv/bin/ruff format --check . && venv/bin/ruff check . && venv/bin/mypy .

render: bootstrap ## render every host's files of STACK into build/STACK
	venv/bin/python -m halab render --stack $(LAB_STACK) --out build/$(LAB_STACK)

lab: bootstrap-tests ## the namespace lab: up, every drill with its report, down (no hypervisor needed)
	venv/bin/python -m halab lab up --stack $(LAB_STACK) && \
	  { venv/bin/python -m halab lab drill --stack $(LAB_STACK); rc=$$?; \
	    venv/bin/python -m halab lab down --stack $(LAB_STACK); exit $$rc; }

lab-down: ## remove a namespace lab left running
	venv/bin/python -m halab lab down --stack $(LAB_STACK)

engine: bootstrap ## build the Pulumi CLI from Go modules (cached); install the registry's plugins from the local mirror
	python3 -m halab.machine.engine

libvirtd-start: bootstrap ## start the project's own libvirtd in a network namespace (for preview/e2e)
	venv/bin/python -m halab libvirtd start

libvirtd-stop: bootstrap ## stop it and remove everything it made
	venv/bin/python -m halab libvirtd stop

preview: bootstrap ## pulumi preview of STACK (your backend, else the local one)
	venv/bin/python -m halab pulumi $(DEPLOY_STACK) preview

destroy: down ## the same as `make down`

check: bootstrap ## run the failover drill against the deployed lab of STACK
	venv/bin/python -m halab check --stack $(DEPLOY_STACK)

bench: bootstrap-tests ## the failover benchmark in namespaces (tutorial baseline and project defaults; BENCH_ARGS="--runs 1")
	venv/bin/python scripts/benchmark.py $(BENCH_ARGS)

e2e: bootstrap ## real VMs on the local libvirtd, real plugins: up, no-diff, drill, scale out, replace, drift, interrupt, destroy
	venv/bin/python -m halab e2e

e2e-fortigate: bootstrap ## the same on the dev stack, its FortiGate played by the FortiOS emulator on the lab's bridges: up, no-diff, drill, edge changes, destroy
	venv/bin/python -m halab e2e --edge fortigate

docs: bootstrap ## write docs/configuration.md from the config keys Pulumi.yaml declares
	venv/bin/python -m halab docs
