//! The model registry's endpoints: registered models, versions, tags and aliases.

use super::*;

impl MlflowClient {
    /// A registered model, `None` when there is none.
    pub async fn get_registered_model(&self, name: &str) -> Result<Option<Value>> {
        match self
            .call(Method::Get, "registered-models/get", json!({"name": name}))
            .await
        {
            Ok(v) => Ok(Some(v["registered_model"].clone())),
            Err(e) if e.code() == Some(&ErrorCode::ResourceDoesNotExist) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the registered model unless it exists; true when it was created.
    pub async fn ensure_registered_model(
        &self,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<bool> {
        let tags = key_values(tags);
        match self
            .call(
                Method::Post,
                "registered-models/create",
                json!({"name": name, "tags": tags}),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some(&ErrorCode::ResourceAlreadyExists) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a model version, once: the request carries a client token tag, and a
    /// retry after a lost reply first looks for a version of this run with it.
    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[(String, String)],
    ) -> Result<ModelVersion> {
        let token = client_token();
        let mut tags = key_values(tags);
        tags.push(json!({"key": CLIENT_TOKEN_TAG, "value": token}));
        let body = json!({"name": name, "source": source, "run_id": run_id, "tags": tags});
        let v = self
            .create("model-versions/create", body, || async {
                let found = self
                    .find_model_version(name, run_id, CLIENT_TOKEN_TAG, &token)
                    .await?;
                Ok(found.map(|v| json!({"model_version": v})))
            })
            .await?;
        model_version(&v, "model-versions/create")
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let v = self
            .call(
                Method::Get,
                "model-versions/get",
                json!({"name": name, "version": version}),
            )
            .await?;
        model_version(&v, "model-versions/get")
    }

    /// Waits until a version is `READY` (fails on `FAILED_REGISTRATION`).
    pub async fn wait_until_ready(
        &self,
        name: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<ModelVersion> {
        let started = Instant::now();
        loop {
            let v = self.get_model_version(name, version).await?;
            match v.status.as_str() {
                "READY" => return Ok(v),
                "FAILED_REGISTRATION" => {
                    return Err(MlflowError::Protocol {
                        endpoint: "model-versions/get".into(),
                        message: format!("{name} version {version} failed registration"),
                    });
                }
                _ if started.elapsed() > timeout => {
                    return Err(MlflowError::Protocol {
                        endpoint: "model-versions/get".into(),
                        message: format!(
                            "{name} version {version} not READY after {timeout:?} (status {})",
                            v.status
                        ),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// The version of `name` made from run `run_id` that has tag `key` = `value`, if any.
    pub async fn find_model_version(
        &self,
        name: &str,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<ModelVersion>> {
        let filter = format!(
            "name='{}' and run_id='{}'",
            name.replace('\'', "\\'"),
            run_id.replace('\'', "\\'")
        );
        Ok(self
            .search_model_versions(&filter)
            .await?
            .into_iter()
            .find(|v| v.tags.iter().any(|t| t.key == key && t.value == value)))
    }

    /// Versions matching an MLflow filter, e.g. `name='m' and run_id='abc'`.
    pub async fn search_model_versions(&self, filter: &str) -> Result<Vec<ModelVersion>> {
        self.all_pages(
            Method::Get,
            "model-versions/search",
            json!({"filter": filter}),
            "model_versions",
        )
        .await?
        .into_iter()
        .map(|item| parse(item, "model-versions/search"))
        .collect()
    }

    pub async fn delete_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<()> {
        self.call(
            Method::Delete,
            "model-versions/delete-tag",
            json!({"name": name, "version": version, "key": key}),
        )
        .await
        .map(drop)
    }

    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.call(
            Method::Post,
            "model-versions/set-tag",
            json!({"name": name, "version": version, "key": key, "value": value}),
        )
        .await
        .map(drop)
    }

    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.call(
            Method::Post,
            "registered-models/set-tag",
            json!({"name": name, "key": key, "value": value}),
        )
        .await
        .map(drop)
    }

    pub async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        self.call(
            Method::Post,
            "registered-models/alias",
            json!({"name": name, "alias": alias, "version": version}),
        )
        .await
        .map(drop)
    }

    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.call(
            Method::Delete,
            "registered-models/alias",
            json!({"name": name, "alias": alias}),
        )
        .await
        .map(drop)
    }

    /// The version an alias points at, `None` when the alias is not set.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>> {
        match self
            .call(
                Method::Get,
                "registered-models/alias",
                json!({"name": name, "alias": alias}),
            )
            .await
        {
            Ok(v) => model_version(&v, "registered-models/alias").map(Some),
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::ResourceDoesNotExist | ErrorCode::InvalidParameterValue)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
