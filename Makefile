# make demo: the whole thesis pipeline on the synthetic demo set; make test: the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo test test-avx2 bench clean-demo

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	# This project itself, editable: `import semantic_timbre` and the semantic-timbre-* commands work from anywhere.
	$(PY) -m pip install --quiet --no-deps -e .
	# numba compiles librosa's functions for the timbral features once, here, not in parallel test processes.
	$(PY) -c "from semantic_timbre.data.perceptual import warm_up; warm_up()"
	touch $(STAMP)

venv: $(STAMP)

# Every step, in the thesis's order. The demo audio is made only when audio/ holds no files.
demo: venv
	@if [ -z "$$(find audio -type f ! -name '.*' | head -n 1)" ]; then $(PY) make_demo_audio.py; \
	else echo "audio/ already holds files: using them"; fi
	$(PY) process_audio_into_spectrograms.py
	$(PY) timbre_generation_vae.py
	$(PY) train_timbre_generation_vae.py --preset demo --validation-split 0.1
	$(PY) visualise_latent_space.py
	$(PY) visualise_latent_space.py -timbre
	$(PY) visualise_latent_space.py -magnitude
	$(PY) visualise_latent_space.py -pitch
	$(PY) generate_single_sample.py Crunch 100 E4
	$(PY) generate_timbre_interpolation.py Bright 100 E4 Dark 100 E4 5
	$(PY) evaluate_timbre_generation_vae.py
	$(PY) apply_timbre_descriptor.py audio/ModulationFX/Fluttery/0/1-5.wav Fuzz 75 -o singlesample/generated/A4_Fuzz75.wav --overwrite
	$(PY) generate_from_description.py Fuzz 60 A4 --overwrite

# Two worker processes, one test file each at a time (a file's fixtures are built once).
test: venv
	$(PY) -m pytest tests -n 2 --dist loadfile

# The model tests again with oneDNN held to AVX2 kernels, as on CPUs without AVX-512 (CI runs it).
test-avx2: venv
	ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest tests/test_vae.py

bench: venv
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

# Remove everything the demo generated (keeps the placeholders).
clean-demo:
	git clean -fdX -- audio spectrograms minmax model singlesample interpolated_samples evaluation
	rm -f Visualise_VAE_Latent_Space* plotly.min.js
