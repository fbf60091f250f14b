"""Box-prompted medical image segmentation for the CVPR 2024 'SAM on Laptop' challenge, on OpenVINO."""

__version__ = "0.1.0"
