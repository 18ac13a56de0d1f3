"""Pretrained speech encoders as front ends (the `ssl` model family; optional extra: pip install -e ".[ssl]").

They live on the data side because in frozen mode an encoder is a feature extractor like the log-mel front
end (ser/data/features.py): its hidden states are computed once and cached (ser/data/embeddings.py). When it
is fine-tuned the same stack trains inside the network (ser/models/ssl.py), which may import from data.

source.py resolves `model.encoder` (a local directory or a hub id) to a folder and an identity;
preprocess.py reproduces each encoder's own feature extractor in torch; stack.py loads the encoder and
returns every layer's hidden states. Importing this package imports neither torch nor transformers:
transformers is loaded only when an encoder is built, so code that never uses the family never imports it.
"""
