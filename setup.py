"""Python install of hydranet_ros without a ROS install (colcon builds with CMakeLists.txt)."""
from setuptools import find_packages, setup

setup(
    name='hydranet_ros',
    version='0.1.0',
    description='Joint metric depth and semantic segmentation (HydraNet) for ROS 2',
    license='BSD-3-Clause',
    python_requires='>=3.10',
    packages=find_packages(include=['hydranet_ros', 'hydranet_ros.*']),
    package_data={'hydranet_ros': ['assets/*', 'assets/**/*']},
    include_package_data=True,
    zip_safe=False,
    extras_require={'fleet': ['ray==2.60.0']},  # hydranet-fleet; kept in requirements-dev.txt
    entry_points={
        'console_scripts': [
            'hydranet-infer = hydranet_ros.tools.infer:main',
            'hydranet-bench = hydranet_ros.tools.bench:main',
            'hydranet-demo = hydranet_ros.tools.node_demo:main',
            'hydranet-train = hydranet_ros.tools.train:main',
            'hydranet-eval = hydranet_ros.tools.evaluate:main',
            'hydranet-bag = hydranet_ros.tools.bag:main',
            'hydranet-fleet = hydranet_ros.tools.fleet:main',
            'hydranet_node = hydranet_ros.node.launcher:main',
            'hydranet_demo_source = hydranet_ros.node.launcher:demo_source',
        ],
    },
)
