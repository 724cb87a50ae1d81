"""Pretrained speech encoders (HuBERT, wav2vec 2.0, WavLM) from a local Hugging Face folder.

- :mod:`.model`     load a model offline (safetensors only) and run it over 16 kHz waveforms;
- :mod:`.frames`    the encoder's 20 ms frames against the archives' 10 ms frame numbers;
- :mod:`.audio`     the waveform of each utterance of a prepared dataset;
- :mod:`.features`  word tokens (in context or isolated) and training utterances in every layer;
- :mod:`.layers`    same-different AP of every layer, its table and plot, the best layer extracted.

``speechreps encoder`` (and ``speechreps run --encoder``) drive them.
"""
