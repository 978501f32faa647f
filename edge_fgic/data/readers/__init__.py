"""The dataset readers, one module per on-disk layout, each registered under ``--data KIND=ROOT``:
``imagefolder`` (a plain path), ``synthetic`` (the embedded default), and the native layouts of the
six fine-grained benchmarks.

Each reader is registered under ``--data KIND=ROOT`` (aliases in brackets):

* ``cub200`` [cub, cub200_2011, cub_200_2011] -- CUB-200-2011:
  ROOT/CUB_200_2011/{images.txt,image_class_labels.txt,train_test_split.txt,classes.txt,images/}
  (ROOT may also be CUB_200_2011/ itself).
* ``stanford_dogs`` [dogs] -- Stanford Dogs:
  ROOT/{Images/n02085620-Chihuahua/*.jpg,lists/train_list.mat,lists/test_list.mat}.
* ``flowers102`` [flowers, oxford_flowers102] -- Oxford 102 Flowers (torchvision Flowers102):
  ROOT/flowers-102/{jpg/image_00001.jpg,imagelabels.mat,setid.mat}; official train/val/test.
* ``oxford_pets`` [pets, oxford_iiit_pet] -- Oxford-IIIT Pet (torchvision OxfordIIITPet):
  ROOT/oxford-iiit-pet/{images/*.jpg,annotations/trainval.txt,annotations/test.txt}.
* ``stanford_cars`` [cars] -- Stanford Cars (torchvision StanfordCars):
  ROOT/stanford_cars/{devkit/cars_meta.mat,devkit/cars_train_annos.mat,cars_train/,
  cars_test_annos_withlabels.mat,cars_test/}.
* ``fgvc_aircraft`` [aircraft, fgvc-aircraft] -- FGVC-Aircraft 2013b, variant level (torchvision
  FGVCAircraft): ROOT/fgvc-aircraft-2013b/data/{variants.txt,images_variant_{train,val,test}.txt,images/};
  official train/val/test.

For every torchvision-backed reader ROOT may also be the dataset folder itself
(``flowers-102/``, ``oxford-iiit-pet/``, ...). Datasets without an official validation split
(CUB, Dogs, Pets, Cars) get ``val`` = a deterministic stratified 10 % holdout of the official
train split (per class, seed 0, chosen from the sorted paths, >= 1 image per class left in
train); ``train`` = the rest; ``test`` = the official test split. Every split of a dataset
has the same class list in the same order, and every sample path is absolute.

Importing this package registers every reader (:func:`edge_fgic.data.registry._load_builtin_readers`
does it on first use). A new layout is one module here and one import below.
"""

from . import (
           cub200,
           fgvc_aircraft,
           flowers102,
           imagefolder,
           oxford_pets,
           stanford_cars,
           stanford_dogs,
           synthetic,
)
from .common import VAL_FRACTION, VAL_SEED, carve_val
from .cub200 import read_cub200
from .fgvc_aircraft import read_fgvc_aircraft
from .flowers102 import read_flowers102
from .imagefolder import read_imagefolder
from .oxford_pets import read_oxford_pets
from .stanford_cars import read_stanford_cars
from .stanford_dogs import read_stanford_dogs
from .synthetic import read_synthetic

__all__ = ["VAL_FRACTION", "VAL_SEED", "carve_val", "cub200", "fgvc_aircraft", "flowers102", "imagefolder",
           "oxford_pets", "read_cub200", "read_fgvc_aircraft", "read_flowers102", "read_imagefolder",
           "read_oxford_pets", "read_stanford_cars", "read_stanford_dogs", "read_synthetic", "stanford_cars",
           "stanford_dogs", "synthetic"]
