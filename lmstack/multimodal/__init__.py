"""Multimodal on a laptop: images paired with English and Chinese text (procedural shapes and
handwritten digits), a CLIP-style image-text model, captioning and a small diffusion model."""
