//! A node pool's storage as data volumes: which volumes a node has, where they are mounted in the
//! Kafka container, which log directories Kafka uses on them and which one holds the KRaft
//! metadata log. The pod builder and the `server.properties` builder both read these paths from
//! here so they cannot disagree. Pure: no I/O.

use shared_crds::names;
use shared_crds::node_pool::{JbodVolume, KraftMetadataStorage, Storage, StorageType, VolumeType};

/// Where data volumes are mounted: `/var/lib/kafka/data` for single-volume storage and
/// `/var/lib/kafka/data-<id>` for each volume of `jbod` storage.
pub const DATA_MOUNT_ROOT: &str = "/var/lib/kafka";

/// A pool's storage: its data volumes, sorted by JBOD volume ID.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedStorage {
    /// One volume for `ephemeral` and `persistent-claim` storage, one per entry for `jbod`.
    pub volumes: Vec<DataVolume>,
}

/// One data volume of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct DataVolume {
    /// The JBOD volume ID; `None` for single-volume storage.
    pub jbod_id: Option<i32>,
    /// What backs the volume.
    pub kind: VolumeKind,
    /// True for the one volume that holds the KRaft metadata log.
    pub holds_kraft_metadata: bool,
}

/// What backs a data volume.
#[derive(Clone, Debug, PartialEq)]
pub enum VolumeKind {
    /// An emptyDir, optionally size-limited.
    Ephemeral {
        /// The emptyDir's size limit, e.g. `1Gi`.
        size_limit: Option<String>,
    },
    /// A PersistentVolumeClaim per node.
    PersistentClaim {
        /// The requested size, e.g. `100Gi`.
        size: String,
        /// The storage class; `None` for the cluster default.
        class: Option<String>,
        /// Whether the claim is deleted when its node is removed.
        delete_claim: bool,
    },
}

/// Storage settings that cannot be turned into volumes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StorageError {
    /// `jbod` storage without any volume.
    #[error("node pool {pool}: jbod storage needs at least one entry in storage.volumes")]
    JbodWithoutVolumes {
        /// The pool.
        pool: String,
    },
    /// `volumes` given for storage that is not `jbod`.
    #[error(
        "node pool {pool}: storage.volumes is only allowed with storage type jbod; remove it or set type: jbod"
    )]
    VolumesWithoutJbod {
        /// The pool.
        pool: String,
    },
    /// A persistent claim without a size.
    #[error("node pool {pool}: {volume} of type persistent-claim needs a size, e.g. size: 100Gi")]
    PersistentClaimWithoutSize {
        /// The pool.
        pool: String,
        /// `storage` or `volume <id>`.
        volume: String,
    },
    /// Two JBOD volumes with the same ID.
    #[error(
        "node pool {pool}: jbod volume id {id} is used more than once; volume ids must be unique"
    )]
    DuplicateJbodVolumeId {
        /// The pool.
        pool: String,
        /// The repeated ID.
        id: i32,
    },
    /// A negative JBOD volume ID.
    #[error("node pool {pool}: jbod volume id {id} is negative; use 0 or above")]
    NegativeJbodVolumeId {
        /// The pool.
        pool: String,
        /// The ID.
        id: i32,
    },
    /// More than one JBOD volume claims the KRaft metadata log.
    #[error(
        "node pool {pool}: volumes {ids:?} all set kraftMetadata: shared; at most one volume may hold the KRaft metadata"
    )]
    MultipleKraftMetadataVolumes {
        /// The pool.
        pool: String,
        /// The volumes that claim it.
        ids: Vec<i32>,
    },
}

impl StorageError {
    /// Stable CamelCase reason for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            StorageError::JbodWithoutVolumes { .. } => "JbodWithoutVolumes",
            StorageError::VolumesWithoutJbod { .. } => "VolumesWithoutJbod",
            StorageError::PersistentClaimWithoutSize { .. } => "PersistentClaimWithoutSize",
            StorageError::DuplicateJbodVolumeId { .. } => "DuplicateJbodVolumeId",
            StorageError::NegativeJbodVolumeId { .. } => "NegativeJbodVolumeId",
            StorageError::MultipleKraftMetadataVolumes { .. } => "MultipleKraftMetadataVolumes",
        }
    }
}

/// Turns pool `pool`'s storage spec into volumes. The schema's CEL rules catch most of these
/// errors at admission; they are checked again because builders rely on them.
pub fn resolve_storage(pool: &str, storage: &Storage) -> Result<ResolvedStorage, StorageError> {
    let pool_name = || pool.to_string();
    if storage.type_ != StorageType::Jbod && storage.volumes.is_some() {
        return Err(StorageError::VolumesWithoutJbod { pool: pool_name() });
    }
    let single = |kind| ResolvedStorage {
        volumes: vec![DataVolume {
            jbod_id: None,
            kind,
            holds_kraft_metadata: true,
        }],
    };
    match storage.type_ {
        StorageType::Ephemeral => Ok(single(VolumeKind::Ephemeral {
            size_limit: storage.size_limit.clone(),
        })),
        StorageType::PersistentClaim => {
            let size = storage
                .size
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| StorageError::PersistentClaimWithoutSize {
                    pool: pool_name(),
                    volume: "storage".to_string(),
                })?;
            Ok(single(VolumeKind::PersistentClaim {
                size,
                class: storage.class.clone(),
                delete_claim: storage.delete_claim.unwrap_or(false),
            }))
        }
        StorageType::Jbod => resolve_jbod(pool, storage.volumes.as_deref().unwrap_or_default()),
    }
}

fn resolve_jbod(pool: &str, volumes: &[JbodVolume]) -> Result<ResolvedStorage, StorageError> {
    if volumes.is_empty() {
        return Err(StorageError::JbodWithoutVolumes {
            pool: pool.to_string(),
        });
    }
    let mut sorted: Vec<&JbodVolume> = volumes.iter().collect();
    sorted.sort_by_key(|v| v.id);
    for pair in sorted.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(StorageError::DuplicateJbodVolumeId {
                pool: pool.to_string(),
                id: pair[0].id,
            });
        }
    }
    if let Some(v) = sorted.iter().find(|v| v.id < 0) {
        return Err(StorageError::NegativeJbodVolumeId {
            pool: pool.to_string(),
            id: v.id,
        });
    }
    let metadata: Vec<i32> = sorted
        .iter()
        .filter(|v| v.kraft_metadata == Some(KraftMetadataStorage::Shared))
        .map(|v| v.id)
        .collect();
    if metadata.len() > 1 {
        return Err(StorageError::MultipleKraftMetadataVolumes {
            pool: pool.to_string(),
            ids: metadata,
        });
    }
    // Without an explicit choice the lowest volume ID holds the metadata log, as documented on
    // the CRD; choosing it here keeps it from moving when volumes are added later.
    let metadata_id = metadata.first().copied().unwrap_or(sorted[0].id);
    let volumes = sorted
        .into_iter()
        .map(|v| {
            let kind = match v.type_ {
                VolumeType::Ephemeral => VolumeKind::Ephemeral {
                    size_limit: v.size_limit.clone(),
                },
                VolumeType::PersistentClaim => VolumeKind::PersistentClaim {
                    size: v.size.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
                        StorageError::PersistentClaimWithoutSize {
                            pool: pool.to_string(),
                            volume: format!("volume {}", v.id),
                        }
                    })?,
                    class: v.class.clone(),
                    delete_claim: v.delete_claim.unwrap_or(false),
                },
            };
            Ok(DataVolume {
                jbod_id: Some(v.id),
                kind,
                holds_kraft_metadata: v.id == metadata_id,
            })
        })
        .collect::<Result<_, StorageError>>()?;
    Ok(ResolvedStorage { volumes })
}

impl DataVolume {
    /// The name of the volume in the pod spec: `data` or `data-<id>`.
    pub fn volume_name(&self) -> String {
        match self.jbod_id {
            None => "data".to_string(),
            Some(id) => format!("data-{id}"),
        }
    }

    /// Where the volume is mounted in the Kafka container.
    pub fn mount_path(&self) -> String {
        format!("{DATA_MOUNT_ROOT}/{}", self.volume_name())
    }

    /// The Kafka log directory of node `node_id` on this volume: a sub-directory named after the
    /// node, because the root of a fresh filesystem may hold `lost+found`, which Kafka would take
    /// for a damaged partition directory.
    pub fn log_dir(&self, node_id: i32) -> String {
        format!("{}/kafka-log{node_id}", self.mount_path())
    }

    /// True for an emptyDir, whose content is gone when the pod is recreated.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self.kind, VolumeKind::Ephemeral { .. })
    }

    /// The name of the PersistentVolumeClaim backing this volume on node `node_id`.
    pub fn claim_name(&self, cluster: &str, pool: &str, node_id: i32) -> String {
        names::data_volume_claim(cluster, pool, node_id, self.jbod_id)
    }
}

impl ResolvedStorage {
    /// The node's log directories (`log.dirs`), in volume order.
    pub fn log_dirs(&self, node_id: i32) -> Vec<String> {
        self.volumes.iter().map(|v| v.log_dir(node_id)).collect()
    }

    /// The volume that holds the KRaft metadata log.
    pub fn metadata_volume(&self) -> &DataVolume {
        self.volumes
            .iter()
            .find(|v| v.holds_kraft_metadata)
            .unwrap_or(&self.volumes[0])
    }

    /// The node's KRaft metadata log directory (`metadata.log.dir`).
    pub fn metadata_log_dir(&self, node_id: i32) -> String {
        self.metadata_volume().log_dir(node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(yaml: &str) -> Storage {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn ephemeral_storage_is_one_volume_holding_the_metadata() {
        let s = resolve_storage("p", &storage("type: ephemeral\nsizeLimit: 1Gi")).unwrap();
        assert_eq!(s.volumes.len(), 1);
        assert_eq!(
            s.volumes[0].kind,
            VolumeKind::Ephemeral {
                size_limit: Some("1Gi".into())
            }
        );
        assert_eq!(s.log_dirs(3), ["/var/lib/kafka/data/kafka-log3"]);
        assert_eq!(s.metadata_log_dir(3), "/var/lib/kafka/data/kafka-log3");
        assert_eq!(s.volumes[0].claim_name("c", "p", 3), "data-c-p-3");
    }

    #[test]
    fn persistent_claim_keeps_size_class_and_delete_claim() {
        let s = resolve_storage(
            "p",
            &storage("type: persistent-claim\nsize: 10Gi\nclass: fast\ndeleteClaim: true"),
        )
        .unwrap();
        assert_eq!(
            s.volumes[0].kind,
            VolumeKind::PersistentClaim {
                size: "10Gi".into(),
                class: Some("fast".into()),
                delete_claim: true
            }
        );
    }

    #[test]
    fn persistent_claim_without_size_is_refused() {
        let err = resolve_storage("p", &storage("type: persistent-claim")).unwrap_err();
        assert_eq!(err.reason(), "PersistentClaimWithoutSize");
    }

    #[test]
    fn jbod_volumes_are_sorted_and_the_lowest_holds_the_metadata_by_default() {
        let s = resolve_storage(
            "p",
            &storage(
                "type: jbod\nvolumes:\n- {id: 2, type: persistent-claim, size: 1Gi}\n- {id: 0, type: ephemeral}",
            ),
        )
        .unwrap();
        assert_eq!(
            s.log_dirs(5),
            [
                "/var/lib/kafka/data-0/kafka-log5",
                "/var/lib/kafka/data-2/kafka-log5"
            ]
        );
        assert_eq!(s.metadata_log_dir(5), "/var/lib/kafka/data-0/kafka-log5");
        assert_eq!(s.volumes[1].claim_name("c", "p", 5), "data-2-c-p-5");
    }

    #[test]
    fn jbod_metadata_volume_can_be_chosen() {
        let s = resolve_storage(
            "p",
            &storage(
                "type: jbod\nvolumes:\n- {id: 0, type: ephemeral}\n- {id: 1, type: ephemeral, kraftMetadata: shared}",
            ),
        )
        .unwrap();
        assert_eq!(s.metadata_log_dir(1), "/var/lib/kafka/data-1/kafka-log1");
        assert_eq!(s.metadata_volume().jbod_id, Some(1));
        assert!(s.metadata_volume().is_ephemeral());
    }

    #[test]
    fn jbod_errors() {
        let reason = |yaml: &str| resolve_storage("p", &storage(yaml)).unwrap_err().reason();
        assert_eq!(reason("type: jbod"), "JbodWithoutVolumes");
        assert_eq!(reason("type: jbod\nvolumes: []"), "JbodWithoutVolumes");
        assert_eq!(
            reason("type: ephemeral\nvolumes:\n- {id: 0, type: ephemeral}"),
            "VolumesWithoutJbod"
        );
        assert_eq!(
            reason("type: jbod\nvolumes:\n- {id: 0, type: ephemeral}\n- {id: 0, type: ephemeral}"),
            "DuplicateJbodVolumeId"
        );
        assert_eq!(
            reason("type: jbod\nvolumes:\n- {id: 0, type: persistent-claim}"),
            "PersistentClaimWithoutSize"
        );
        assert_eq!(
            reason(
                "type: jbod\nvolumes:\n- {id: 0, type: ephemeral, kraftMetadata: shared}\n- {id: 1, type: ephemeral, kraftMetadata: shared}"
            ),
            "MultipleKraftMetadataVolumes"
        );
        assert_eq!(
            reason("type: jbod\nvolumes:\n- {id: -1, type: ephemeral}"),
            "NegativeJbodVolumeId"
        );
    }
}
