"""Unsupervised term discovery (``speechreps discover``) and its evaluation (ZeroSpeech measures).

- :mod:`.config`    the settings (one dataclass);
- :mod:`.segments`  candidate windows and their embeddings;
- :mod:`.search`    nearest neighbours (faiss HNSW or exact);
- :mod:`.verify`    DTW of listed pairs, overlap removal;
- :mod:`.cluster`   intervals -> nodes -> clusters;
- :mod:`.core`      the steps in order (:func:`~.core.discover`);
- :mod:`.outputs`   the pair file, the discovered-term archive, the cluster file;
- :mod:`.tde`       NED, coverage, grouping, token / type / boundary precision, recall and F.
"""
