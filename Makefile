# One obvious command each.  Run inside the project's virtualenv (see README).
.PHONY: test test-slow lint compile images

test:            ## the README's test command (what CI runs)
	python -m pytest

test-slow:       ## the long checks: every NAS-Bench hash, the full neighbour precompute, ...
	python -m pytest -m slow

lint:            ## ruff (lint + format check) and mypy on the library
	ruff check core components pipelines cli tests bench
	ruff format --check core components pipelines cli tests bench
	mypy            # the whole rachel package (core, components, pipelines, cli): see pyproject.toml

compile:         ## the pipeline's IR for the cluster
	rachel compile --output build/rachel-pipeline.yaml

images:          ## needs a Docker engine; registry and tag from RACHEL_IMAGE_REGISTRY / RACHEL_IMAGE_TAG
	docker build -f images/Dockerfile.cpu -t $${RACHEL_IMAGE_REGISTRY:-rachel}/rachel-cpu:$${RACHEL_IMAGE_TAG:-dev} .
	docker build -f images/Dockerfile.gpu -t $${RACHEL_IMAGE_REGISTRY:-rachel}/rachel-gpu:$${RACHEL_IMAGE_TAG:-dev} .
