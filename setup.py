from setuptools import find_packages, setup

setup(
    name="video-lavit",
    version="0.1.0",
    description="Hugging Face-native Video-LaVIT: decoupled visual-motional tokenization for video understanding and generation",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["video_lavit", "video_lavit.*"]),
    include_package_data=True,
    package_data={"video_lavit": ["assets/*", "assets/**/*", "mini/model/*", "mini/model/**/*", "mini/metrics/**/*"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4,<3",
        "transformers>=5.23,<5.24",  # 5.24 renames output fields (past_key_values -> cache)
        "diffusers>=0.42,<0.43",
        "huggingface-hub>=1.0",
        "datasets>=4",
        "peft>=0.21,<0.22",
        "evaluate>=0.4.6",
        "accelerate>=1.10",
        "av>=14",
        "safetensors>=0.4",
        "tokenizers>=0.22",
        "sentencepiece>=0.2",
        "numpy>=1.26",
        "pillow>=10",
        "tqdm>=4.66",
    ],
    extras_require={"test": ["pytest>=8"]},
    entry_points={"console_scripts": ["video-lavit=video_lavit.cli:main"]},
)
