"""Shipped files are found in the package's share directories, an indexed install first."""
import pytest

from hydranet_ros.share import CHECKOUT_DIR, share_directories, share_path, ShareFileError


def make_prefix(root):
    """Lay out an install prefix the ament index knows, with its own copy of the parameters."""
    marker = root / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'hydranet_ros'
    marker.parent.mkdir(parents=True)
    marker.touch()
    config = root / 'share' / 'hydranet_ros' / 'config'
    config.mkdir(parents=True)
    (config / 'hydranet.yaml').write_text('hydranet: {ros__parameters: {}}\n')
    return root / 'share' / 'hydranet_ros'


def test_every_shipped_file_is_found():
    for parts in (('config', 'hydranet.yaml'), ('config', 'fastdds_large_data.xml'),
                  ('config', 'hydranet.rviz'), ('launch', 'perception.launch.py'),
                  ('msg', 'LabelInfo.msg')):
        assert share_path(*parts).is_file(), parts


def test_an_indexed_install_comes_first_and_others_fill_in(tmp_path, monkeypatch):
    share = make_prefix(tmp_path / 'install')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path / 'install'))
    directories = share_directories()
    assert directories[0] == share
    assert len(directories) == len(set(path.resolve() for path in directories))
    assert share_path('config', 'hydranet.yaml') == share / 'config' / 'hydranet.yaml'
    profile = share_path('config', 'fastdds_large_data.xml')  # not in that prefix
    assert profile.is_file() and share not in profile.parents


def test_without_an_index_the_checkout_is_the_last_place(monkeypatch):
    monkeypatch.delenv('AMENT_PREFIX_PATH', raising=False)
    assert share_directories()[-1] == CHECKOUT_DIR


def test_a_missing_file_names_the_places_looked_in():
    with pytest.raises(ShareFileError, match='config/missing.yaml is not installed') as caught:
        share_path('config', 'missing.yaml')
    assert str(CHECKOUT_DIR) in str(caught.value) and 'make setup' in str(caught.value)
